/*-------------------------------------------------------------------------
 *
 * fairness.h
 *	  The fair order of a queue's tasks across fairness keys (fairness.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_FAIRNESS_H
#define DURABLE_FAIRNESS_H

#include "durable.h"

extern int	durable_fairness_keys;
extern void durable_fairness_shmem_request(void);
extern void durable_fairness_shmem_startup(void);
extern double durable_fair_pass(const char *ns, const char *queue, int priority,
								bool new_run, const char *key, double weight);
extern void durable_fairness_claimed(const char *ns, const char *queue, int priority,
									 bool new_run, double pass);
extern void durable_get_fairness(Jsonb *obj, const char *ctx, char **key, double *weight);

/*
 * FAIR_PASS: the SQL expression of the pass of a task of queue QUEUE in
 * namespace NS with key KEY and weight WEIGHT, priority PRIO and new_run
 * NEW_RUN (its lane) that is ready at READY (durable's time NOW):
 * durable.fair_pass() if it is ready now, 'Infinity' (the periodic work
 * gives it one when it comes due) if later.
 */
#define FAIR_PASS(NS, QUEUE, KEY, WEIGHT, PRIO, NEW_RUN, READY, NOW) \
	"CASE WHEN " READY " > " NOW " THEN 'Infinity'::float8 " \
	"     ELSE durable.fair_pass(" NS ", " QUEUE ", " KEY ", " WEIGHT ", " \
	PRIO ", " NEW_RUN ") END"

#endif							/* DURABLE_FAIRNESS_H */
