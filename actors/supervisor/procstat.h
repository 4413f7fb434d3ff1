/*  procstat.h: Prometheus' standard process metrics of one process, read from
 *  /proc (Linux): CPU seconds, resident memory, open and max file
 *  descriptors, start time. The supervisor reads them for each actor it runs
 *  and for itself, labelled by actor.
 */
#ifndef ALYS_PROCSTAT_H
#define ALYS_PROCSTAT_H

#include <sys/types.h>

typedef struct {
    double cpu_seconds; /* user + system */
    double resident_bytes;
    double virtual_bytes;
    double open_fds;
    double max_fds;            /* soft RLIMIT_NOFILE */
    double start_time_seconds; /* unix time */
} procstat_t;

/* 0, or -1 if the process is gone or /proc unreadable (errno set). */
int procstat_read(pid_t pid, procstat_t *out);

#endif
