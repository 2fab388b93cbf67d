#ifndef TRAILWATCH_CSHIMS_H
#define TRAILWATCH_CSHIMS_H
#include <stddef.h>

/// memmem(3), which glibc only declares under _GNU_SOURCE.
const void *tw_memmem(const void *haystack, size_t haystack_len, const void *needle, size_t needle_len);

#endif
