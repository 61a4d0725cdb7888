// snn_neuron.h -- one time step of an integer LIF / CUBA-LIF population.
//
// Part of the snn-compile HLS header library (Apache-2.0). neuron_update() is the equation block
// of snn_compile/ir/fixed.py, line by line, in the order of the generic step
// snn_compile/datapath/step.py (current(), membrane(), _multi_spike()). Every intermediate has
// the width lower.py chose: min(target intermediate width, the width its value provably needs),
// so a wrap at the target's intermediate width happens exactly when the emulator's wrap()
// changes the value.
//
// CFG (generated per population in firmware/snn_params.h) provides:
//   N, LANES, GROUPS        population size, parallel update lanes, pipelined groups (II = 1)
//   RESET, SAME_STEP, IMMEDIATE, USES_R, DISCARD_INPUT, SPIKING, HAS_CURRENT, LEAK_FREE,
//   MAX_SPIKES, HAS_FLOOR, ACT_SHIFT, DECAY_BITS     static features of the population
//   cur_t act_t dec_u_t sum_u_t u_t dec_v_t sum_v_t v_t vs_t same_t moved_t spk_t thr_t ...
//   PU, PV                  product widths of the decay multipliers
//   ovf_u ovf_v rnd test    rule structs from snn_arith.h
//   thr(i) bias(i) m_u(i) m_v(i) floor(i)   per-neuron (ROM) or per-population parameters
#ifndef SNN_NEURON_H
#define SNN_NEURON_H

#include "snn_arith.h"

namespace snn {

enum reset_mode { RESET_NONE = 0, RESET_ZERO = 1, RESET_SUBTRACT = 2 };

// u[t] = ovf_u(wrap_ib(wrap_ib(rnd(u[t-1] * m_u >> decay_bits)) + wrap_ib(a << act_shift)));
// without current memory u[t] = ovf_u(wrap_ib(a << act_shift)).
template <class CFG>
inline typename CFG::u_t current(const typename CFG::cur_t &a, const typename CFG::u_t &u, int i) {
#pragma HLS INLINE
    const ap_int<cap64<CFG::cur_t::width + CFG::ACT_SHIFT>::W64> a_wide = a;
    const typename CFG::act_t act = a_wide << CFG::ACT_SHIFT;
    typename CFG::sum_u_t cur = act;
    if (CFG::HAS_CURRENT) {
        const typename CFG::dec_u_t du =
            decay<CFG::PU, CFG::DECAY_BITS, typename CFG::rnd, CFG::dec_u_t::width>(u, CFG::m_u(i));
        cur = du + act;  // wraps at sum_u_t, the intermediate width when it is reachable
    }
    return CFG::ovf_u::template apply<CFG::u_t::width>(cur);
}

// (s, v[t]) from v[t-1] and u[t]: reset flag, leak, bias, resets, spike test, floor.
template <class CFG>
inline void membrane(const typename CFG::u_t &u_new, typename CFG::vs_t &v,
                     typename CFG::spk_t &s, int i) {
#pragma HLS INLINE
    typedef typename CFG::v_t v_t;    // the voltage register (ovf_v's width)
    typedef typename CFG::vs_t vs_t;  // the stored voltage
    const typename CFG::thr_t thr = CFG::thr(i);

    // r = test(v[t-1], thr) unless reset "none", immediate timing or proven 0 (step.py)
    const bool r = CFG::USES_R && CFG::test::pass(v, thr);
    // v0 = 0 where r (reset "zero" keeping the input) else v[t-1]
    vs_t v0 = v;
    if (CFG::RESET == RESET_ZERO && !CFG::DISCARD_INPUT && r) v0 = 0;
    // leak = wrap_ib(rnd(v0 * m_v >> decay_bits)); the identity when m_v = 2^decay_bits
    typename CFG::dec_v_t leak;
    if (CFG::LEAK_FREE)
        leak = v0;
    else
        leak = decay<CFG::PV, CFG::DECAY_BITS, typename CFG::rnd, CFG::dec_v_t::width>(v0, CFG::m_v(i));
    // v' = ovf_v(wrap_ib(leak + u[t] + bias - (r * thr if subtract)))
    typename CFG::sum_v_t y = leak + u_new + CFG::bias(i);
    if (CFG::RESET == RESET_SUBTRACT && r) y = y - thr;
    v_t v1 = CFG::ovf_v::template apply<v_t::width>(y);
    // v' = 0 where r (reset "zero" with reset_discards_input)
    if (CFG::RESET == RESET_ZERO && CFG::DISCARD_INPUT && r) v1 = 0;
    vs_t v_new = v1;

    if (CFG::SPIKING && CFG::MAX_SPIKES > 1) {
        // multi-spike: s = clip(v' // thr, 0, max_spikes), reset immediately
        const typename CFG::spk_t count =
            spike_count<CFG::spk_t::width, CFG::MAX_SPIKES>(v1, thr);
        if (CFG::RESET == RESET_SUBTRACT) {
            const typename CFG::moved_t moved = v1 - count * thr;  // wrap_ib(v' - s * thr)
            v_new = CFG::ovf_v::template apply<v_t::width>(moved);
        } else if (CFG::RESET == RESET_ZERO && count > 0) {
            v_new = 0;
        }
        s = count;
    } else {
        // s[t] = test(v', thr); a non-spiking readout never spikes
        const bool spike = CFG::SPIKING && CFG::test::pass(v1, thr);
        // same_step / immediate: v[t] = ovf_v(wrap_ib(v' - (s - r) * thr))   (subtract)
        //                        v[t] = v' - (s - r) * v'  (zero: 0, v' or 2 v', stored in vs_t)
        if (CFG::SAME_STEP && CFG::RESET == RESET_SUBTRACT && spike != r) {
            const typename CFG::same_t moved = spike ? typename CFG::same_t(v1 - thr)
                                                     : typename CFG::same_t(v1 + thr);
            v_new = CFG::ovf_v::template apply<v_t::width>(moved);
        }
        if (CFG::SAME_STEP && CFG::RESET == RESET_ZERO && spike && !r) v_new = 0;
        if (CFG::SAME_STEP && CFG::RESET == RESET_ZERO && !spike && r) v_new = vs_t(v1) + vs_t(v1);
        s = spike;
    }
    // v[t] = max(v[t], v_floor)
    if (CFG::HAS_FLOOR) {
        const typename CFG::floor_t f = CFG::floor(i);
        if (v_new < f) v_new = f;
    }
    v = v_new;
}

// One neuron: a -> (s, u[t], v[t]).
template <class CFG>
inline void neuron_update(const typename CFG::cur_t &a, typename CFG::u_t &u, typename CFG::vs_t &v,
                          typename CFG::spk_t &s, int i) {
#pragma HLS INLINE
    u = current<CFG>(a, u, i);
    membrane<CFG>(u, v, s, i);
}

// One step of a population (parallel design): GROUPS pipelined iterations (II = 1) of LANES
// parallel neurons.
template <class CFG>
void neuron_step(const typename CFG::cur_t a[CFG::N], typename CFG::u_t u[CFG::N],
                 typename CFG::vs_t v[CFG::N], typename CFG::spk_t s[CFG::N]) {
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
