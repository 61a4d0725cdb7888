/* Helpers of the native emulator's generated kernels (pasted at the top of every kernel source,
 * so the kernel's hash covers them; see snn_compile/emulator/kernel_source.py).
 *
 * Datapath values are int64_t. Sums, differences, products and left shifts are done on
 * uint64_t, which C defines to wrap modulo 2**64: the datapath's 64-bit two's complement width.
 * The conversion back to int64_t is modular with GCC and Clang (and -fwrapv is passed too).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__SSE2__)
#include <immintrin.h>
#endif

/* Scratch memory on whole cache lines (free() releases it). */
static inline void *snn_alloc(size_t bytes) {
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

/* Ask for the next step's rows early: a sample's rows are B rows apart in the [T, B, n]
 * arrays, too far for the hardware prefetcher. */
static inline void snn_prefetch(const void *p, int64_t bytes, int write) {
#if defined(__GNUC__)
    for (int64_t at = 0; at < bytes; at += 64) {
        if (write)
            __builtin_prefetch((const char *)p + at, 1, 3);
        else
            __builtin_prefetch((const char *)p + at, 0, 3);
    }
#else
    (void)p; (void)bytes; (void)write;
#endif
}

/* Copy a finished row of a recorded state to its trace with non-temporal stores where the CPU
 * has them: the trace is read only after the run, so its lines need not be fetched first
 * (write-allocate) nor kept in cache. snn_stream_fence() orders them before the kernel returns. */
static inline void snn_stream(void *dst, const void *src, int64_t bytes) {
#if defined(__AVX512F__) || defined(__AVX__) || defined(__SSE2__)
#if defined(__AVX512F__)
    enum { W = 64 };
#elif defined(__AVX__)
    enum { W = 32 };
#else
    enum { W = 16 };
#endif
    char *d = (char *)dst;
    const char *s = (const char *)src;
    int64_t head = (int64_t)(-(uintptr_t)d & (W - 1));
    head = head < bytes ? head : bytes;
    memcpy(d, s, (size_t)head);
    d += head, s += head, bytes -= head;
    for (; bytes >= W; bytes -= W, d += W, s += W) {
#if defined(__AVX512F__)
        _mm512_stream_si512((__m512i *)d, _mm512_loadu_si512((const void *)s));
#elif defined(__AVX__)
        _mm256_stream_si256((__m256i *)d, _mm256_loadu_si256((const __m256i *)s));
#else
        _mm_stream_si128((__m128i *)d, _mm_loadu_si128((const __m128i *)s));
#endif
    }
    memcpy(d, s, (size_t)bytes);
#else
    memcpy(dst, src, (size_t)bytes);
#endif
}

static inline void snn_stream_fence(void) {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

static inline int64_t snn_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static inline int64_t snn_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static inline int64_t snn_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
static inline int64_t snn_shl(int64_t x, int k) { return (int64_t)((uint64_t)x << k); }

/* a[0:16] += x * w[0:16] modulo the width of A (the inner step of a convolution's scatter):
 * GCC/Clang vector extensions where available (the compilers do not vectorise a 16-element loop
 * whose addresses come from a table), a loop elsewhere. */
#if defined(__GNUC__)
#define SNN_VEC16(T) typedef T snn_v16_##T __attribute__((vector_size(16 * sizeof(T)), aligned(sizeof(T))))
SNN_VEC16(int8_t); SNN_VEC16(int16_t); SNN_VEC16(int32_t); SNN_VEC16(int64_t);
SNN_VEC16(uint16_t); SNN_VEC16(uint32_t); SNN_VEC16(uint64_t);
#define SNN_DEFINE_ADD16(A, U, W)                                                            \
    static inline void snn_add16_##A##_##W(A *a, const W *w, int64_t x) {                   \
        snn_v16_##U av;                                                                      \
        snn_v16_##W wv;                                                                      \
        memcpy(&av, a, sizeof av);                                                           \
        memcpy(&wv, w, sizeof wv);                                                           \
        av += (snn_v16_##U)__builtin_convertvector(wv, snn_v16_##A) * (U)x;                  \
        memcpy(a, &av, sizeof av);                                                           \
    }
#else
#define SNN_DEFINE_ADD16(A, U, W)                                                            \
    static inline void snn_add16_##A##_##W(A *a, const W *w, int64_t x) {                   \
        for (int o = 0; o < 16; o++) a[o] = (A)((U)a[o] + (U)w[o] * (U)x);                   \
    }
#endif
#define SNN_DEFINE_ADD16_ALL(A, U) SNN_DEFINE_ADD16(A, U, int8_t) SNN_DEFINE_ADD16(A, U, int16_t) \
    SNN_DEFINE_ADD16(A, U, int32_t) SNN_DEFINE_ADD16(A, U, int64_t)
SNN_DEFINE_ADD16_ALL(int16_t, uint16_t)
SNN_DEFINE_ADD16_ALL(int32_t, uint32_t)
SNN_DEFINE_ADD16_ALL(int64_t, uint64_t)

/* clip(floor(v / thr), 0, cap) for thr > 0: a multi-spike count. A negative v gives a
 * non-positive floor quotient, clipped to 0, so the truncating C division suffices. */
static inline int64_t snn_count(int64_t v, int64_t thr, int64_t cap) {
    if (v <= 0) return 0;
    const int64_t q = v / thr;
    return q < cap ? q : cap;
}

/* Positions (and values) of the non-zero entries of one input row: the events of a step.
 * Returns how many there are; idx (and val) must hold n entries. */
#define SNN_DEFINE_COLLECT(NAME, T)                                                         \
    static inline int64_t NAME(const T *x, int64_t n, int32_t *idx, int64_t *val) {         \
        int64_t k = 0;                                                                       \
        for (int64_t i = 0; i < n; i++) {                                                    \
            idx[k] = (int32_t)i;                                                             \
            val[k] = (int64_t)x[i];                                                          \
            k += x[i] != 0;                                                                  \
        }                                                                                    \
        return k;                                                                            \
    }
SNN_DEFINE_COLLECT(snn_collect_int8_t, int8_t)
SNN_DEFINE_COLLECT(snn_collect_int16_t, int16_t)
SNN_DEFINE_COLLECT(snn_collect_int32_t, int32_t)
SNN_DEFINE_COLLECT(snn_collect_int64_t, int64_t)

/* Spikes (0/1 or counts) are sparse bytes: find the non-zero ones through a bit mask per block
 * of 64 (AVX-512) or 32 (AVX2) bytes, or per 8-byte word elsewhere; then one step per event. */
static inline int64_t snn_collect_uint8_t(const uint8_t *x, int64_t n, int32_t *idx,
                                          int64_t *val) {
    int64_t k = 0, i = 0;
#if defined(__AVX512BW__)
    for (; i + 64 <= n; i += 64) {
        const __m512i v = _mm512_loadu_si512((const void *)(x + i));
        for (uint64_t m = _mm512_test_epi8_mask(v, v); m; m &= m - 1) {
            const int64_t at = i + __builtin_ctzll(m);
            idx[k] = (int32_t)at;
            val[k++] = x[at];
        }
    }
#elif defined(__AVX2__)
    for (; i + 32 <= n; i += 32) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(x + i));
        const __m256i zero = _mm256_cmpeq_epi8(v, _mm256_setzero_si256());
        for (uint32_t m = ~(uint32_t)_mm256_movemask_epi8(zero); m; m &= m - 1) {
            const int64_t at = i + __builtin_ctz(m);
            idx[k] = (int32_t)at;
            val[k++] = x[at];
        }
    }
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, x + i, 8);
        while (word) {
            const int byte = __builtin_ctzll(word) >> 3;  /* lowest non-zero byte */
            idx[k] = (int32_t)(i + byte);
            val[k++] = x[i + byte];
            word &= ~((uint64_t)0xff << (8 * byte));
        }
    }
#endif
    for (; i < n; i++) {
        idx[k] = (int32_t)i;
        val[k] = x[i];
        k += x[i] != 0;
    }
    return k;
}

/* An upper bound of |sum of w * x| over the events: sum of |x| * (max |w| of the event's
 * column; the caller clips these at 2**31), computed until it reaches `cap` <= 2**31 (the
 * caller only asks whether it stays below). Each term is at most 2**62 and the sum so far below
 * 2**31: no overflow. */
static inline int64_t snn_event_bound(const int32_t *idx, const int64_t *val, int64_t nnz,
                                      const int64_t *colmax, int64_t cap) {
    uint64_t bound = 0;
    for (int64_t k = 0; k < nnz && bound < (uint64_t)cap; k++) {
        const uint64_t x = val[k] < 0 ? 0 - (uint64_t)val[k] : (uint64_t)val[k];
        bound += (x < (uint64_t)cap ? x : (uint64_t)cap) * (uint64_t)colmax[idx[k]];
    }
    return bound < (uint64_t)cap ? (int64_t)bound : cap;
}
