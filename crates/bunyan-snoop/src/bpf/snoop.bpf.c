// SPDX-License-Identifier: GPL-2.0
/* snoop.bpf.c — placeholder, replaced by the USDT log snooper. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

SEC("usdt")
int BPF_USDT(log_record, void *json)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
