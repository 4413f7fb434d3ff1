/*  sdnotify.h: systemd's readiness protocol (sd_notify(3)), for Type=notify.
 *
 *  One datagram "READY=1", "STOPPING=1", "STATUS=...", "WATCHDOG=1" to the
 *  unix socket named by $NOTIFY_SOCKET (a leading '@' means the abstract
 *  namespace). Written here in a few lines rather than linking libsystemd:
 *  the protocol is this one sendmsg, and the binaries stay free of a
 *  dependency that containers and non-systemd hosts do not have. Without
 *  $NOTIFY_SOCKET every call is a no-op.
 */
#ifndef ALYS_SDNOTIFY_H
#define ALYS_SDNOTIFY_H

/* 1 sent, 0 no NOTIFY_SOCKET, -1 error (errno set). */
int sdnotify_send(const char *state);

#endif
