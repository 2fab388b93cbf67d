#include <zlib.h>
/* inflateInit2 is a macro; Swift needs a function. */
static inline int tw_inflate_init_gzip(z_streamp strm) { return inflateInit2(strm, 15 + 32); }
