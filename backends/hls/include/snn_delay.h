// snn_delay.h -- the spikes of the last R steps of a source, for projection delays.
//
// Part of the snn-compile HLS header library (Apache-2.0). snn_compile/ir/fixed.py:
// "acc_k = W_k (*) x_k[t - delay_k]", zero for t < delay_k (the emulator feeds zeros for the
// first delay steps). A source keeps a ring of R slots; at the start of every step advance()
// moves to the slot of this step, the source writes it (now()) when it is evaluated, and a
// projection with delay d reads slot(d). lower.py sizes R so that the slot read is never
// overwritten before it is read: R > d when the source is evaluated before the projection's
// target, R >= d for feedback (the source overwrites slot(d) only later in the same step).
// The slots start zeroed, so the first d steps read zeros.
#ifndef SNN_DELAY_H
#define SNN_DELAY_H

#include <ap_int.h>

namespace snn {

// Dense values (parallel design): buf[slot][i].
template <class T, int N, int R>
struct ring {
    T buf[R][N];
    int head;

    void clear() {
        head = 0;
    CLEAR:
        for (int r = 0; r < R; r++)
            for (int i = 0; i < N; i++) buf[r][i] = 0;
    }
    void advance() { head = (R == 1 || head + 1 == R) ? 0 : head + 1; }
    int slot(int age) const { return R == 1 ? 0 : (head + R - age) % R; }
    const T *now() const { return buf[slot(0)]; }
    // Copies in and out of the slots (R > 1: a slot chosen at run time is read element by
    // element rather than through a pointer; with R = 1 the generated code uses buf[0]).
    void load(int age, T out[N]) const {
        const int s = slot(age);
    LOAD:
        for (int i = 0; i < N; i++) out[i] = buf[s][i];
    }
    void store(const T in[N]) {
        const int s = slot(0);
    STORE:
        for (int i = 0; i < N; i++) buf[s][i] = in[i];
    }
};

// Event lists (event design): the indices and values of one step's nonzero entries, in index
// order. begin() empties this step's slot right before the source writes it; readers of older
// slots (and feedback readers of this one, which run before the source) see complete lists.
template <class V, int N, int R, int IB>
struct event_ring {
    typedef V value_t;
    ap_uint<IB> idx[R][N];
    V val[R][N];
    int len[R];
    int head;

    void clear() {
        head = 0;
    CLEAR:
        for (int r = 0; r < R; r++) len[r] = 0;
    }
    void advance() { head = (R == 1 || head + 1 == R) ? 0 : head + 1; }
    int slot(int age) const { return R == 1 ? 0 : (head + R - age) % R; }
    void begin() { len[slot(0)] = 0; }
    void push(int i, const V &value) {
#pragma HLS INLINE
        const int h = slot(0);
        idx[h][len[h]] = i;
        val[h][len[h]] = value;
        len[h] = len[h] + 1;
    }
};

} // namespace snn

#endif // SNN_DELAY_H
