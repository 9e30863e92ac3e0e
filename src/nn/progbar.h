/* Keras's progress bar: "Epoch e/E" lines are printed by fit; this draws
 * "step/steps ━━━━━━━━━━━━━━━━━━━━ ETA / elapsed, per-step time - metrics". */
#ifndef LM_PROGBAR_H
#define LM_PROGBAR_H

#include <stdbool.h>
#include <stdio.h>
#include "nn/nn.h"

typedef struct lm_progbar lm_progbar;

/* target: steps, or -1 when unknown. verbose 1 draws the bar, redrawn in
 * place (backspaces, "\r" and ANSI styles, whatever f is: Keras does so on
 * every POSIX system) at most every 0.05 s and always when finalized; 2
 * prints one line when finalized and ignores earlier updates (Keras's
 * ProgbarLogger makes none). Metrics show in Keras's fit order: sorted,
 * val_ ones last. */
lm_progbar *lm_progbar_new(FILE *f, int64_t target, int verbose);
/* Replaces the clock (seconds, like time.time()) and restarts the timer; for tests. */
void lm_progbar_set_clock(lm_progbar *p, double (*now)(void *), void *user);
/* Reports progress after `current` steps with the running logs; finalize on the last. */
void lm_progbar_update(lm_progbar *p, int64_t current, const lm_logs *logs, bool finalize);
void lm_progbar_free(lm_progbar *p);
/* Redraw in place (the default on a terminal) or print each update as a
 * plain line (the default for files and pipes). */
void lm_progbar_set_dynamic(lm_progbar *p, bool dynamic);

#endif
