/*
 * server_rt.h - the runtime behind the network server: thsrv_ops
 * implemented on the embedding API (thr_), used by `theater server`.
 */
#ifndef TH_CLI_SERVER_RT_H
#define TH_CLI_SERVER_RT_H

#include "theater/runtime.h"
#include "theater/server.h"

/* The ops; ctx is the thr_runtime *. */
extern const thsrv_ops cli_server_rt_ops;

#endif
