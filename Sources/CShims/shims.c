#define _GNU_SOURCE
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include "cshims.h"
#ifdef __linux__
#include <sys/inotify.h>
#endif

const void *tw_memmem(const void *haystack, size_t haystack_len, const void *needle, size_t needle_len) {
    return memmem(haystack, haystack_len, needle, needle_len);
}

#ifdef __linux__
int tw_inotify_init(void) { return inotify_init1(IN_NONBLOCK | IN_CLOEXEC); }

int tw_inotify_watch_directory(int fd, const char *path) {
    return inotify_add_watch(fd, path, IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MODIFY
                                           | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
}

int tw_inotify_drain(int fd, int *created) {
    char buffer[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    int events = 0;
    *created = 0;
    for (;;) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return events;
            return -1;
        }
        if (n == 0) return events;
        for (char *p = buffer; p < buffer + n;) {
            const struct inotify_event *e = (const struct inotify_event *)p;
            if (e->mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF))
                *created = 1;
            events++;
            p += sizeof(struct inotify_event) + e->len;
        }
    }
}
#else
int tw_inotify_init(void) { errno = ENOSYS; return -1; }
int tw_inotify_watch_directory(int fd, const char *path) { (void)fd; (void)path; errno = ENOSYS; return -1; }
int tw_inotify_drain(int fd, int *created) { (void)fd; *created = 0; errno = ENOSYS; return -1; }
#endif
