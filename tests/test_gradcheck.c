/* Gradient check of every op in the registry, by central differences. The
 * test fails if an op of the registry is not exercised: differentiable ops
 * must be differentiated, backward helpers must appear in some backward
 * graph, and ops without a gradient must have a forward check. */
#include "gradcheck.h"
#include "lmtest.h"
#include "gradcheck.c.inc"

#include "gc/core.inc"
#include "gc/elementwise.inc"
#include "gc/reduce.inc"
#include "gc/linalg.inc"
#include "gc/shape.inc"
#include "gc/conv.inc"
#include "gc/norm.inc"
#include "gc/rnn.inc"
#include "gc/loss.inc"

static const gc_case *const families[] = {gc_cases_core,   gc_cases_elementwise, gc_cases_reduce,
                                          gc_cases_linalg, gc_cases_shape,       gc_cases_conv,
                                          gc_cases_norm,   gc_cases_rnn,         gc_cases_loss};

static bool seen_fwd[LM_OP_COUNT], seen_bwd[LM_OP_COUNT];
static lm_ctx *ctx;
static const char *only; /* run only cases whose name contains this */

static void run_all_cases(void) {
    for (size_t f = 0; f < sizeof families / sizeof *families; f++)
        for (const gc_case *c = families[f]; c->name; c++) {
            if (only && !strstr(c->name, only)) continue;
            int fails = gc_run(ctx, c, seen_fwd, seen_bwd);
            CHECK_MSG(fails == 0, "gradient check %s: %d mismatches", c->name, fails);
        }
}

static void registry_rows_complete(void) {
    for (int op = 0; op < LM_OP_COUNT; op++) {
        const lm_op_def *d = lm_op_get(op);
        CHECK_MSG(d && d->name && d->infer, "op %d has no name or shape rule", op);
        if (!d || (d->flags & LM_OPF_SOURCE)) continue;
        CHECK_MSG(d->kernel[LM_BACKEND_CPU], "op %s has no CPU kernel", d->name);
        bool nograd = d->flags & (LM_OPF_NONDIFF | LM_OPF_GRAD_ONLY);
        CHECK_MSG(d->grad || nograd, "op %s has no backward rule and is not marked", d->name);
    }
}

static void every_op_checked(void) {
    if (only) return;
    for (int op = 0; op < LM_OP_COUNT; op++) {
        const lm_op_def *d = lm_op_get(op);
        if (d->flags & LM_OPF_SOURCE) continue;
        if (d->flags & LM_OPF_GRAD_ONLY)
            CHECK_MSG(seen_bwd[op], "backward op %s never appears in a checked backward graph",
                      d->name);
        else if (d->flags & LM_OPF_NONDIFF)
            CHECK_MSG(seen_fwd[op] || seen_bwd[op], "op %s has no forward check", d->name);
        else
            CHECK_MSG(seen_fwd[op], "op %s has no gradient check", d->name);
    }
}

int main(int argc, char **argv) {
    if (argc > 1) only = argv[1];
    ctx = lm_ctx_new();
    RUN(registry_rows_complete);
    RUN(run_all_cases);
    RUN(every_op_checked);
    lm_ctx_free(ctx);
    return lmt_summary("gradcheck");
}
