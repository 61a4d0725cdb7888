// snn_arith.h -- integer arithmetic rules of the snn-compile FPGA datapath.
//
// Part of the snn-compile HLS header library (Apache-2.0). Every rule here is one entry of the
// rule table snn_compile/datapath/rules.py (the datapath defined once; its equation block is in
// snn_compile/ir/fixed.py); the C simulation must equal the emulator, which executes that table,
// bit for bit. Rules are small structs so that a population's configuration selects them by type
// (no run-time ifs). The rule 'wrap_lava' is not implemented: the backend refuses it through its
// declared capabilities.
#ifndef SNN_ARITH_H
#define SNN_ARITH_H

#include <ap_int.h>

namespace snn {

typedef ap_uint<1> spike_t;

template <int A, int B> struct max_int { static const int V = A > B ? A : B; };
// A two's complement width capped at 64: the emulator computes in int64, so anything wider
// than 64 bits wraps there as well.
template <int W> struct cap64 { static const int W64 = W < 64 ? W : 64; };

// ---------------------------------------------------------------------------------------------
// Overflow rules (rules.py kind "overflow": neuron.u_overflow, neuron.v_overflow).
// apply<W>(x) brings any ap_int value into a W-bit register.

// rules.wrap: two's complement wrap into [-2^(W-1), 2^(W-1)); ap_int narrowing truncates.
struct ovf_wrap {
    template <int W, int B> static ap_int<W> apply(const ap_int<B> &x) { return ap_int<W>(x); }
};

// rules.saturate: clip into [-2^(W-1), 2^(W-1) - 1].
struct ovf_saturate {
    template <int W, int B> static ap_int<W> apply(const ap_int<B> &x) {
        const ap_int<W> hi = ap_int<W>((ap_uint<W>(1) << (W - 1)) - 1);
        const ap_int<W> lo = -hi - 1;
        if (x > hi) return hi;
        if (x < lo) return lo;
        return ap_int<W>(x);
    }
};

// rules.saturate_symmetric: clip into [-(2^(W-1) - 1), 2^(W-1) - 1].
struct ovf_saturate_symmetric {
    template <int W, int B> static ap_int<W> apply(const ap_int<B> &x) {
        const ap_int<W> hi = ap_int<W>((ap_uint<W>(1) << (W - 1)) - 1);
        if (x > hi) return hi;
        if (x < -hi) return ap_int<W>(-hi);
        return ap_int<W>(x);
    }
};

// ---------------------------------------------------------------------------------------------
// Rounding of the decay shift "rnd(p >> K)" (rules.py kind "rounding": neuron.decay_rounding).
// p is a P-bit product; each rule returns its result in a width that holds it exactly (the
// caller narrows to the width lower.py proved sufficient or to the target's wrap width).

// rules.floor: ap_int's >> is an arithmetic shift, i.e. floor division by 2^K.
struct rnd_floor {
    template <int K, int P> struct out { static const int W = P; };
    template <int K, int P> static ap_int<P> shr(const ap_int<P> &p) { return p >> K; }
};

// rules.toward_zero: (p + (2^K - 1 if p < 0 else 0)) >> K, i.e. sign(p) * (|p| >> K).
// The sum is formed one bit wider than p and 2^K - 1 (never wider than 64 bits: a 64-bit
// product has wrapped like the emulator's, and adding to a negative value cannot overflow).
struct rnd_toward_zero {
    template <int K, int P> struct out {
        static const int W = cap64<max_int<P, K + 1>::V + 1>::W64;
    };
    template <int K, int P> static ap_int<out<K, P>::W> shr(const ap_int<P> &p) {
        typedef ap_int<out<K, P>::W> wide_t;
        if (K == 0) return wide_t(p);
        wide_t w = p;
        if (p < 0) w += (wide_t(1) << K) - 1;  // + 2^K - 1 (wide_t has K + 2 bits or more)
        return wide_t(w >> K);
    }
};

// rules.nearest: round half up, (p + 2^(K-1)) >> K; K = 0 leaves p unchanged. At 64 bits the
// sum wraps exactly like the emulator's int64 addition.
struct rnd_nearest {
    template <int K, int P> struct out { static const int W = cap64<max_int<P, K>::V + 1>::W64; };
    template <int K, int P> static ap_int<out<K, P>::W> shr(const ap_int<P> &p) {
        typedef ap_int<out<K, P>::W> wide_t;
        if (K == 0) return wide_t(p);
        const wide_t half = wide_t(1) << (K > 0 ? K - 1 : 0);
        const wide_t w = wide_t(p) + half;
        return wide_t(w >> K);
    }
};

// ---------------------------------------------------------------------------------------------
// Spike tests (rules.py kind "spike_test": a population's spike_test).
struct test_gt {
    template <int A, int B> static bool pass(const ap_int<A> &v, const ap_int<B> &thr) { return v > thr; }
};
struct test_ge {
    template <int A, int B> static bool pass(const ap_int<A> &v, const ap_int<B> &thr) { return v >= thr; }
};

// ---------------------------------------------------------------------------------------------
// Decay term "wrap_ib(rnd(x * m >> K))" of fixed.py.
// The product is formed in P = min(64, W + MB) bits: exact when it fits, and wrapping at 64 bits
// exactly like the emulator's int64 product when it does not. OUT is the (possibly narrower)
// result width chosen by lower.py, which proves the rounded value fits or equals the target's
// intermediate width.
template <int P, int K, class RND, int OUT, int W, int MB>
inline ap_int<OUT> decay(const ap_int<W> &x, const ap_uint<MB> &m) {
#pragma HLS INLINE
    const ap_int<P> p = x * m;
    return ap_int<OUT>(RND::template shr<K>(p));
}

// Synaptic exponent "acc << weight_exp" (a floor shift acc >> -exp for negative exponents,
// datapath/step.py shift_exponent) followed by the wrap to the accumulator width OUT
// (fixed.py: "c_k = wrap_k(acc_k << weight_exp_k)").
template <int EXP, int OUT, int B>
inline ap_int<OUT> scale_wrap(const ap_int<B> &acc) {
#pragma HLS INLINE
    if (EXP >= 0) {
        const ap_int<cap64<B + (EXP > 0 ? EXP : 0)>::W64> wide = acc;
        return ap_int<OUT>(wide << (EXP > 0 ? EXP : 0));
    }
    return ap_int<OUT>(acc >> (EXP < 0 ? -EXP : 0));
}

// Multi-spike count "clip(v // thr, 0, MAX)" for thr > 0 (rules.py Primitives.count).
template <int C, int MAX, int V, int T>
inline ap_uint<C> spike_count(const ap_int<V> &v, const ap_int<T> &thr) {
#pragma HLS INLINE
    if (!(v >= thr)) return 0;  // v < thr: floor(v / thr) <= 0 (thr > 0)
    const ap_uint<V> q = ap_uint<V>(v) / ap_uint<T>(thr);  // both positive: / is floor
    return q > MAX ? ap_uint<C>(MAX) : ap_uint<C>(q);
}

} // namespace snn

#endif // SNN_ARITH_H
