/*-------------------------------------------------------------------------
 *
 * access.h
 *	  Who may call what, and acting as the extension's owner (access.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_ACCESS_H
#define DURABLE_ACCESS_H

#include "durable.h"

/* what a caller is allowed to do (access.c) */
typedef enum DurableRight
{
	DURABLE_RIGHT_CLIENT,
	DURABLE_RIGHT_WORKER,
	DURABLE_RIGHT_ADMIN
} DurableRight;

/*
 * A call into the engine: checks rights as the caller, then runs SPI as
 * the extension's owner.  durable_enter / durable_leave bracket it.
 */
typedef struct DurableCall
{
	Oid			saved_userid;
	int			saved_sec_context;
	int			guc_nest;		/* GUC nest level if search_path was pinned */
} DurableCall;

/* the only search_path the engine's statements ever run with */
#define DURABLE_SEARCH_PATH GUC_SAFE_SEARCH_PATH

extern void durable_enter(DurableCall *call);
extern void durable_leave(DurableCall *call);
extern void durable_check_right(DurableRight right, const char *ns,
								const char *queue);
extern void durable_check_right_of(Oid uid, DurableRight right, const char *ns,
								   const char *queue);

#endif							/* DURABLE_ACCESS_H */
