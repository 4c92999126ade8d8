/*-------------------------------------------------------------------------
 *
 * admin.h
 *	  Namespaces and grants (admin.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DURABLE_ADMIN_H
#define DURABLE_ADMIN_H

#include "durable.h"

/* the periodic work deletes the grants of dropped roles */
extern int	durable_grants_forget_dropped_roles(void);

#endif							/* DURABLE_ADMIN_H */
