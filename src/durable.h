/*-------------------------------------------------------------------------
 *
 * durable.h
 *	  What every part of durable shares: its SQLSTATEs, version, limits and
 *	  settings (GUCs).  Each module declares its own functions in a header
 *	  of its name (engine.h, shmem.h, spi.h, ...).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_H
#define DURABLE_H

#include "compat.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/*
 * SQLSTATEs of class DU ("durable"): clients branch on these.
 * Keep docs/protocol.md in step.
 */
#define ERRCODE_DURABLE_INVALID_ARGUMENT	MAKE_SQLSTATE('D','U','0','0','1')
#define ERRCODE_DURABLE_INVALID_COMMAND		MAKE_SQLSTATE('D','U','0','0','2')
#define ERRCODE_DURABLE_NONDETERMINISM		MAKE_SQLSTATE('D','U','0','0','3')
#define ERRCODE_DURABLE_STALE_TOKEN			MAKE_SQLSTATE('D','U','0','0','4')
#define ERRCODE_DURABLE_WORKFLOW_NOT_FOUND	MAKE_SQLSTATE('D','U','0','0','5')
#define ERRCODE_DURABLE_WORKFLOW_EXISTS		MAKE_SQLSTATE('D','U','0','0','6')
#define ERRCODE_DURABLE_WORKFLOW_CLOSED		MAKE_SQLSTATE('D','U','0','0','7')
#define ERRCODE_DURABLE_PAYLOAD_TOO_LARGE	MAKE_SQLSTATE('D','U','0','0','8')
#define ERRCODE_DURABLE_ACCESS_DENIED		MAKE_SQLSTATE('D','U','0','0','9')
#define ERRCODE_DURABLE_WORKFLOW_FAILED		MAKE_SQLSTATE('D','U','0','1','0')
#define ERRCODE_DURABLE_WRONG_TASK_KIND		MAKE_SQLSTATE('D','U','0','1','1')
#define ERRCODE_DURABLE_NOT_READY			MAKE_SQLSTATE('D','U','0','1','2')
#define ERRCODE_DURABLE_VERSION_MISMATCH	MAKE_SQLSTATE('D','U','0','1','3')
#define ERRCODE_DURABLE_NO_PENDING_ACTIVITY	MAKE_SQLSTATE('D','U','0','1','4')
#define ERRCODE_DURABLE_QUERY_FAILED		MAKE_SQLSTATE('D','U','0','1','5')
#define ERRCODE_DURABLE_QUERY_TIMEOUT		MAKE_SQLSTATE('D','U','0','1','6')
#define ERRCODE_DURABLE_UPDATE_FAILED		MAKE_SQLSTATE('D','U','0','1','7')

/* the release this library implements (Makefile: EXTVERSION) */
#ifndef DURABLE_VERSION
#error "DURABLE_VERSION must be defined (the Makefile passes EXTVERSION)"
#endif

/* 'no due time' for durable_step_insert_or_match (0 is a valid time: 2000-01-01) */
#define DURABLE_NO_TIME DT_NOBEGIN

/* limits on names; queue names also become NOTIFY channels */
#define DURABLE_MAX_NAME		255
#define DURABLE_MAX_WORKFLOW_ID	1000
#define DURABLE_MAX_QUEUE		54
#define DURABLE_MAX_BATCH		1000
/* task priorities, higher first */
#define DURABLE_MIN_PRIORITY	(-1000)
#define DURABLE_MAX_PRIORITY	1000
#define DURABLE_MAX_SIGNAL_NAMES 100	/* names one signal wait takes */
/* starts in one wf_start_many call */
/* a live query's arguments and answer (jsonb text) travel in shared memory */
#define DURABLE_QUERY_MAX_ARGS	 8192
#define DURABLE_QUERY_MAX_ANSWER 65536
#define DURABLE_MAX_STARTS		100000

/* durations longer than ten years are taken for mistakes */
#define MAX_DURATION_MS ((int64) 10 * 366 * 86400000)

/* GUCs (durable.c) */
extern char *durable_namespace;
extern int	durable_max_payload_kb;
extern int	durable_clock_offset_s;
extern bool durable_bgw_enabled;
extern int	durable_bgw_naptime_ms;
extern int	durable_bgw_batch_size;
extern char *durable_bgw_databases;

#endif							/* DURABLE_H */
