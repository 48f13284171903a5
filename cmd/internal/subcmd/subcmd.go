// Package subcmd runs a subcommand of the developer tools (scrmgw-load,
// scrmgw-bench) by its name and gives the process's exit code.
package subcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// ErrUsage means a subcommand's arguments were wrong and it (or the
// flag package) has said why on stderr: exit code 2.
var ErrUsage = errors.New("usage")

// Func is a subcommand, given the arguments after its name.
type Func func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Run runs the subcommand args[0] of cmds with the rest of args, under
// a context that SIGINT and SIGTERM cancel, and returns the exit code:
// 0 when it succeeded; 1 when it failed ("name sub: error" on stderr);
// 2 for ErrUsage, no command or an unknown one (with usage on stderr).
// help, -h and --help print usage on stdout.
func Run(name, usage string, cmds map[string]Func, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n%s", name, args[0], usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch err := cmd(ctx, args[1:], stdout, stderr); {
	case err == nil:
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "%s %s: %v\n", name, args[0], err)
		return 1
	}
}
