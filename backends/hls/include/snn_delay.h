// snn_delay.h -- fixed delays of synaptic input and of recurrent spikes.
//
// Part of the snn-compile HLS header library (Apache-2.0). snn_compile/ir/fixed.py:
// "acc = W @ x[t - d]" with d = timing.synapse_delay + layer.delay, and recurrent input
// "W_rec @ s[t - max(1, d)]". The emulator (engine.py) delays the wrapped synaptic input by
// whole steps and feeds zeros for the first d steps; a ring of D slots does the same when it
// starts zeroed. Per step: peek() the value written D steps ago, put() this step's value into
// the same slot, then advance() once.
#ifndef SNN_DELAY_H
#define SNN_DELAY_H

namespace snn {

template <class T, int N, int D>
struct delay_line {
    T buf[D][N];
    int head;

    void clear() {
        head = 0;
    CLEAR:
        for (int d = 0; d < D; d++)
            for (int i = 0; i < N; i++) buf[d][i] = 0;
    }
    T peek(int i) const { return buf[head][i]; }
    void put(int i, const T &value) { buf[head][i] = value; }
    void advance() { head = head + 1 == D ? 0 : head + 1; }
};

} // namespace snn

#endif // SNN_DELAY_H
