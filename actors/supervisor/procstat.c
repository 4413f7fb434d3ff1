/*  procstat.c: see procstat.h. Field positions are those of proc(5). */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Boot time, unix seconds, from the clocks: /proc/stat's btime is hidden
 * under the unit's ProcSubset=pid. */
static double boot_time(void)
{
    struct timespec real, boot;
    if (clock_gettime(CLOCK_REALTIME, &real) != 0 || clock_gettime(CLOCK_BOOTTIME, &boot) != 0)
        return 0;
    return (double) (real.tv_sec - boot.tv_sec) + (double) (real.tv_nsec - boot.tv_nsec) / 1e9;
}

/* utime, stime, starttime, vsize, rss (pages) from /proc/PID/stat. */
static int read_stat(pid_t pid, procstat_t *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: fields start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    unsigned long utime = 0, stime = 0, vsize = 0;
    unsigned long long start = 0;
    long rss = 0;
    /* state(3) ... utime(14) stime(15) ... starttime(22) vsize(23) rss(24) */
    int got = sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
                     "%*d %*d %llu %lu %ld",
                     &utime, &stime, &start, &vsize, &rss);
    if (got != 5) {
        errno = EINVAL;
        return -1;
    }
    double tck = (double) sysconf(_SC_CLK_TCK);
    out->cpu_seconds = (double) (utime + stime) / tck;
    out->start_time_seconds = boot_time() + (double) start / tck;
    out->virtual_bytes = (double) vsize;
    out->resident_bytes = (double) rss * (double) sysconf(_SC_PAGESIZE);
    return 0;
}

static double count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int) pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    double n = 0;
    for (struct dirent *e = readdir(d); e; e = readdir(d))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static double max_fds(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/limits", (int) pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    double v = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Max open files", 14) == 0) {
            v = strtod(line + 26, NULL);
            break;
        }
    fclose(f);
    return v;
}

int procstat_read(pid_t pid, procstat_t *out)
{
    memset(out, 0, sizeof *out);
    if (read_stat(pid, out) != 0)
        return -1;
    out->open_fds = count_fds(pid);
    out->max_fds = max_fds(pid);
    return out->open_fds < 0 ? -1 : 0;
}
