// SPDX-License-Identifier: GPL-2.0
/* latency.bpf.c — placeholder, replaced by the latency tracer. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("uprobe")
int BPF_UPROBE(queue_work, void *loop, void *req)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
