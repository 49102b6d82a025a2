/*
 * base.h - conventions shared by every part of Theater's public API.
 *
 * Errors are values: functions return 0 on success or a negative TH_E* code,
 * and, when the caller passes a th_err, a human-readable message naming what
 * went wrong and where. Nothing here allocates on the caller's behalf unless
 * the function's comment says who frees it.
 */
#ifndef THEATER_BASE_H
#define THEATER_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TH_API __attribute__((visibility("default")))
#define TH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TH_API
#define TH_PRINTF(f, a)
#endif

enum {
	TH_OK = 0,
	TH_ENOMEM = -1,    /* allocation failed */
	TH_EINVAL = -2,    /* bad argument or malformed input */
	TH_EIO = -3,       /* operating-system I/O error (errno in message) */
	TH_ENOTFOUND = -4, /* no such object, label, actor, export ... */
	TH_ECORRUPT = -5,  /* stored data failed verification */
	TH_EEXIST = -6,    /* already exists */
	TH_ENOSPC = -7,    /* disk or quota full */
	TH_ELIMIT = -8,    /* a configured limit was exceeded */
	TH_EPERM = -9,     /* denied by a permission policy */
	TH_EBUSY = -10,    /* temporarily unavailable (mailbox full ...) */
	TH_ECONFLICT = -11,/* compare-and-swap lost, version mismatch */
	TH_ETIMEOUT = -12, /* deadline passed */
	TH_ESTATE = -13,   /* operation not valid in the object's state */
	TH_EUNSUPPORTED = -14
};

#define TH_ERR_MSG_MAX 512

/* A caller-owned error slot. Zero-initialise it; functions fill it on failure. */
typedef struct th_err {
	int code;
	char msg[TH_ERR_MSG_MAX];
} th_err;

/* Static name of a TH_E* code ("out of memory", ...). */
TH_API const char *th_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
