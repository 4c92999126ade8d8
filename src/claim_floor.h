/*-------------------------------------------------------------------------
 *
 * claim_floor.h
 *	  Where a queue's claims start reading tasks_claim (claim_floor.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_CLAIM_FLOOR_H
#define DURABLE_CLAIM_FLOOR_H

#include "durable.h"

/* durable.claim_floors */
typedef enum ClaimFloors
{
	CLAIM_FLOORS_AUTO,			/* when a background worker serves the database */
	CLAIM_FLOORS_ON,
	CLAIM_FLOORS_OFF
} ClaimFloors;

extern int	durable_claim_floors;

extern void durable_claim_floor_shmem_request(void);
extern void durable_claim_floor_shmem_startup(void);
extern void durable_claim_floor_init(void);
extern void durable_claim_floor_get(const char *ns, const char *queue, int *neg_priority,
									bool *new_run, double *pass, uint64 *gen, uint64 *epoch);
extern void durable_claim_floor_raise(const char *ns, const char *queue, uint64 gen, uint64 epoch,
									  int neg_priority, bool new_run, double pass);
extern void durable_claim_floor_lower(const char *ns, const char *queue, int neg_priority,
									  bool new_run, double pass);
extern void durable_claim_floor_reset(const char *ns, const char *queue);
extern void durable_claim_floor_reset_database(void);

#endif							/* DURABLE_CLAIM_FLOOR_H */
