// snn_neuron.h -- one time step of an integer LIF / CUBA-LIF population.
//
// Part of the snn-compile HLS header library (Apache-2.0). neuron_update() is the equation block
// of snn_compile/ir/fixed.py, line by line, in the same order as the golden model
// backends/emulator/engine.py:run_neurons. Every intermediate has the width lower.py chose:
// min(target intermediate_bits, the width its value provably needs), so a wrap at the target's
// intermediate width happens exactly when the emulator's wrap() changes the value.
//
// CFG (generated per layer in firmware/snn_params.h) provides:
//   N, LANES, GROUPS        population size, parallel update lanes, pipelined groups (II = 1)
//   RESET, SAME_STEP, DISCARD_INPUT, SPIKING, HAS_CURRENT, ACT_SHIFT, DECAY_BITS
//   cur_t act_t dec_u_t sum_u_t u_t dec_v_t sum_v_t v_t same_t thr_t bias_t mu_t mv_t
//   PU, PV                  product widths of the decay multipliers
//   ovf_u ovf_v rnd test    rule structs from snn_arith.h
//   thr(i) bias(i) m_u(i) m_v(i)   per-neuron (ROM) or per-layer (constant) parameters
#ifndef SNN_NEURON_H
#define SNN_NEURON_H

#include "snn_arith.h"

namespace snn {

enum reset_mode { RESET_NONE = 0, RESET_ZERO = 1, RESET_SUBTRACT = 2 };

template <class CFG>
inline void neuron_update(const typename CFG::cur_t &a, typename CFG::u_t &u, typename CFG::v_t &v,
                          spike_t &s, int i) {
#pragma HLS INLINE
    typedef typename CFG::u_t u_t;
    typedef typename CFG::v_t v_t;
    typedef typename CFG::sum_u_t sum_u_t;
    typedef typename CFG::sum_v_t sum_v_t;
    typedef typename CFG::same_t same_t;
    const typename CFG::thr_t thr = CFG::thr(i);

    // r = test(v[t-1], thr) if reset != "none" else 0
    const bool r = CFG::RESET != RESET_NONE && CFG::test::pass(v, thr);
    // v0 = 0 where r (reset "zero" keeping the input) else v[t-1]
    v_t v0 = v;
    if (CFG::RESET == RESET_ZERO && !CFG::DISCARD_INPUT && r) v0 = 0;

    // wrap(a << activation_shift, intermediate_bits)
    const ap_int<CFG::cur_t::width + CFG::ACT_SHIFT> a_wide = a;
    const typename CFG::act_t act = a_wide << CFG::ACT_SHIFT;
    // u[t] = ovf_u(wrap(rnd(u[t-1] * m_u >> decay_bits) + act)); m_u = 0 without current memory
    sum_u_t cur = act;
    if (CFG::HAS_CURRENT) {
        const typename CFG::dec_u_t du =
            decay<CFG::PU, CFG::DECAY_BITS, typename CFG::rnd, CFG::dec_u_t::width>(u, CFG::m_u(i));
        cur = du + act;  // wraps at sum_u_t, the intermediate width when it is reachable
    }
    const u_t u_new = CFG::ovf_u::template apply<u_t::width>(cur);

    // v' = ovf_v(wrap(rnd(v0 * m_v >> decay_bits) + u[t] + bias - (r * thr if subtract)))
    const typename CFG::dec_v_t dv =
        decay<CFG::PV, CFG::DECAY_BITS, typename CFG::rnd, CFG::dec_v_t::width>(v0, CFG::m_v(i));
    sum_v_t y = dv + u_new + CFG::bias(i);
    if (CFG::RESET == RESET_SUBTRACT && r) y = y - thr;
    v_t v_new = CFG::ovf_v::template apply<v_t::width>(y);
    // v' = 0 where r (reset "zero" with reset_discards_input)
    if (CFG::RESET == RESET_ZERO && CFG::DISCARD_INPUT && r) v_new = 0;

    // s[t] = test(v', thr); a non-spiking readout never spikes
    const bool spike = CFG::SPIKING && CFG::test::pass(v_new, thr);

    // same_step: v[t] = ovf_v(wrap(v' - (s - r) * thr))  (subtract)
    //            v[t] = v' - (s - r) * v'                (zero; s = 0, r = 1 is refused by
    //            lower.py because the emulator then leaves 2 v' outside the v_bits range)
    if (CFG::SAME_STEP && CFG::RESET == RESET_SUBTRACT && spike != r) {
        const same_t moved = spike ? same_t(v_new - thr) : same_t(v_new + thr);
        v_new = CFG::ovf_v::template apply<v_t::width>(moved);
    }
    if (CFG::SAME_STEP && CFG::RESET == RESET_ZERO && spike && !r) v_new = 0;

    u = u_new;
    v = v_new;
    s = spike;
}

// One step of a population: GROUPS pipelined iterations (II = 1) of LANES parallel neurons.
template <class CFG>
void neuron_step(const typename CFG::cur_t a[CFG::N], typename CFG::u_t u[CFG::N],
                 typename CFG::v_t v[CFG::N], spike_t s[CFG::N]) {
#pragma HLS INLINE off
GROUP:
    for (int g = 0; g < CFG::GROUPS; g++) {
#pragma HLS PIPELINE II = 1
    LANE:
        for (int l = 0; l < CFG::LANES; l++) {
            const int i = g * CFG::LANES + l;
            if (i < CFG::N) neuron_update<CFG>(a[i], u[i], v[i], s[i], i);
        }
    }
}

} // namespace snn

#endif // SNN_NEURON_H
