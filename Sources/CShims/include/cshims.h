#ifndef TRAILWATCH_CSHIMS_H
#define TRAILWATCH_CSHIMS_H
#include <stddef.h>
#include <stdint.h>

/// memmem(3), which glibc only declares under _GNU_SOURCE.
const void *tw_memmem(const void *haystack, size_t haystack_len, const void *needle, size_t needle_len);

/// inotify, which Swift's Glibc module does not export. Returns -1 (errno set) where unavailable.
int tw_inotify_init(void);
/// Watches a directory for files created, moved in or out, deleted or written. Returns the watch
/// descriptor or -1.
int tw_inotify_watch_directory(int fd, const char *path);
/// Reads and discards pending events; returns how many were read, with `*created` set when any
/// announced a new or moved-in name (so the caller rescans its globs), or -1 on error.
int tw_inotify_drain(int fd, int *created);

/// Asks the processor to fetch the cache line holding `address` for reading: for loops that
/// visit memory in an order the hardware prefetcher cannot guess.
static inline void tw_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

#endif
