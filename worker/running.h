/*
 * The process-wide set of command ids that a job thread is running right
 * now.  A redelivery that arrives while the same id still runs here (its
 * first delivery's connection died, the broker handed it back) waits for the
 * first run to finish instead of running the command a second time in
 * parallel; the second run then finds the committed output and answers it.
 */
#ifndef WRK_RUNNING_H
#define WRK_RUNNING_H

#include <stdatomic.h>
#include <stddef.h>

struct wrk_running;

struct wrk_running *wrk_running_new(void);
void wrk_running_free(struct wrk_running *r);

/*
 * Marks id as running.  Returns 0 at once if it was not, 1 after waiting for
 * another holder to release it, -ECANCELED if *cancel became non-zero while
 * waiting, -ENOMEM.
 */
int wrk_running_acquire(struct wrk_running *r, const char *id, atomic_int *cancel);
void wrk_running_release(struct wrk_running *r, const char *id);
/* Whether id is running, and how many are. */
int wrk_running_has(struct wrk_running *r, const char *id);
size_t wrk_running_count(struct wrk_running *r);

/*
 * The outcomes ("succeeded", "failed") of the last WRK_FINISHED_MAX commands
 * answered by this process, to tell a cancel request that its command
 * finished already.  A bounded memory, lost at restart.  outcome: 1 with
 * the outcome when id (compared without case) is among them, else 0.
 */
#define WRK_FINISHED_MAX 1024
void wrk_running_finished(struct wrk_running *r, const char *id, const char *outcome);
int wrk_running_outcome(struct wrk_running *r, const char *id, char *outcome, size_t outsz);

#endif
