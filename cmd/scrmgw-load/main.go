// Command scrmgw-load is the load harness for scrmgw's inbound WeCom
// callbacks (see docs/performance-callbacks.md for the figures and the
// commands that produced them):
//
//	scrmgw-load gen  --n 400000 --kind text|contact|mix --out DIR
//	scrmgw-load bare --addr 127.0.0.1:9090
//	scrmgw-load run  [--requests DIR] [--conns 32,64,128] ...
//	scrmgw-load campaign [--members 100000] [--kill-at 0.5] ...
//	scrmgw-load surge [--rate 150] [--for 60s] [--nudges N] ...
//	scrmgw-load bot [--rate 1000] [--for 60s] [--kf-share 0.1] ...
//
// gen pre-generates distinct, validly signed and encrypted callbacks with
// wecomfake (exactly as WeCom builds them) into a file a wrk Lua script
// loads, and writes that script. bare is the baseline ceiling: an HTTP
// server that only verifies, decrypts and parses each callback. run starts
// (or uses) PostgreSQL, Redis, the bare server and the real gateway
// (scrmgw serve --workers=false), drives both with wrk at each connection
// count, checks in PostgreSQL that every acknowledged callback was recorded
// exactly once, and prints the table. campaign runs the outbound campaign
// of docs/proof.md: members nudged through their guides on the fake WeCom
// API under its rate limit, the worker killed part way, every member
// checked to have got exactly one message.
//
// scripts/load.sh installs what run needs (wrk, postgresql, redis-server)
// and runs it: the one command of docs/performance-callbacks.md. The
// package's tests include TestKill9UnderLoad, the crash scenario of
// docs/proof.md.
package main

import (
	"io"
	"os"

	"github.com/scrmgw/scrmgw/cmd/internal/subcmd"
)

const usage = `scrmgw-load: load harness for scrmgw's WeCom callbacks and outbound campaigns.

Usage:
  scrmgw-load gen  [flags]   pre-generate signed+encrypted callbacks and the wrk Lua script
  scrmgw-load bare [flags]   baseline server: verify + decrypt + parse, answer "success"
  scrmgw-load run  [flags]   drive the bare server and the gateway with wrk; verify the inbox
  scrmgw-load campaign [flags]  outbound campaign through the fake WeCom API; worker killed; exactly once
  scrmgw-load surge [flags]  welcome surge: new contacts/s at WeCom's call windows; welcomes within 20 s
  scrmgw-load bot [flags]    member messages/s (WeCom kf and DingTalk) through record, bot and send; reply latency

Run "scrmgw-load <command> -h" for its flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return subcmd.Run("scrmgw-load", usage, map[string]subcmd.Func{
		"gen":      genMain,
		"bare":     bareMain,
		"run":      runMain,
		"campaign": campaignMain,
		"surge":    surgeMain,
		"bot":      botMain,
	}, args, stdout, stderr)
}
