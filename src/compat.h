/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL majors durable builds on
 *	  (15 to 18) lives here, so the rest of the code is written once.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_COMPAT_H
#define DURABLE_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "durable requires PostgreSQL 15 or later"
#endif

/*
 * PG 16 moved the GUC-hook and GUC-table declarations out of guc.h;
 * set_config_option itself stays in guc.h.
 */
#if PG_VERSION_NUM >= 160000
#include "utils/guc_hooks.h"
#endif

/* PG 17 names a backend's PGPROC slot MyProcNumber. */
#if PG_VERSION_NUM >= 170000
#define DURABLE_MY_PROCNO MyProcNumber
#else
#define DURABLE_MY_PROCNO (MyProc->pgprocno)
#endif

/* PG 17 moved the local transaction id into PGPROC's vxid. */
#if PG_VERSION_NUM >= 170000
#define DURABLE_MY_LXID (MyProc->vxid.lxid)
#else
#define DURABLE_MY_LXID (MyProc->lxid)
#endif

/*
 * PG 17 names the only safe search_path (RestrictSearchPath() sets it for
 * maintenance commands); the same value before 17.
 */
#if PG_VERSION_NUM >= 170000
#include "utils/guc.h"
#else
#define GUC_SAFE_SEARCH_PATH "pg_catalog, pg_temp"
#endif

#endif							/* DURABLE_COMPAT_H */
