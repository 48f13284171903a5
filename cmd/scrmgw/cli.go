package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

// options holds every command's flags; each command defines the ones it
// takes (command.flags).
type options struct {
	config                          string
	workers, skipInvalid, listEnv   bool
	brand                           string
	memberFile, eventsFile, startAt string
	settleDate, settleFormat        string
	liveFile                        string
	token                           tokenFlags
	healthURL                       string
	healthReady                     bool
	healthTimeout                   time.Duration
	listen                          string
}

// command is one subcommand: what `scrmgw help CMD`, `CMD --help`, the
// overview and the shell completions print.
type command struct {
	name string
	// synopsis is the command's usage lines, each after "scrmgw ".
	synopsis []string
	summary  string
	example  string
	// words are what completes after the command: subcommands, kinds.
	words []string
	// config: the command reads the configuration (--config FILE).
	config bool
	flags  func(fs *flag.FlagSet, o *options)
}

var commands = []command{
	{name: "serve", config: true,
		synopsis: []string{"serve [--config FILE] [--workers=false]"},
		summary:  "run the gateway: HTTP API, callbacks, queue workers, scheduler",
		example:  "scrmgw serve --workers=false    # HTTP only; run `scrmgw worker` beside it",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.BoolVar(&o.workers, "workers", true, "run queue workers and the scheduler in this process too")
		}},
	{name: "worker", config: true,
		synopsis: []string{"worker [--listen ADDR] [--config FILE]"},
		summary:  "run queue workers and the scheduler only; /healthz, /readyz and /metrics on --listen (http.worker_addr)",
		example:  "scrmgw worker --listen :9090 --config /etc/scrmgw/scrmgw.yaml    # beside `scrmgw serve --workers=false`, same database and Redis",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.listen, "listen", "", "answer /healthz, /readyz and /metrics on this address, e.g. :9090 (default: http.worker_addr; none when both are empty)")
		}},
	{name: "migrate", config: true,
		synopsis: []string{"migrate [--config FILE]"},
		summary:  "apply database migrations and exit",
		example:  "scrmgw migrate --config /etc/scrmgw/scrmgw.yaml"},
	{name: "import", config: true, words: []string{"stores", "guides", "members", "products", "orders"},
		synopsis: []string{"import stores|guides|members|products|orders FILE.csv [--skip-invalid] [--brand B] [--config FILE]"},
		summary:  "upsert rows from a CSV file; every bad row is reported with its line",
		example:  "scrmgw import members members.csv --brand acme --skip-invalid",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.BoolVar(&o.skipInvalid, "skip-invalid", false, "write the valid rows even when some rows are bad")
			fs.StringVar(&o.brand, "brand", "", "brand of member rows that have no brand column")
		}},
	{name: "ledger", config: true, words: []string{"settle"},
		synopsis: []string{"ledger settle --date YYYY-MM-DD [--format csv|json] [--config FILE]"},
		summary:  "settle a finished day's commissions per store (T+1); idempotent",
		example:  "scrmgw ledger settle --date 2026-11-24 --format json",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.settleDate, "date", "", "the day to settle, YYYY-MM-DD in ledger.time_zone")
			fs.StringVar(&o.settleFormat, "format", "csv", "output: csv or json")
		}},
	{name: "live", config: true, words: []string{"schedule", "edit", "cancel", "funnel"},
		synopsis: []string{"live schedule --brand B --file SESSION.json [--config FILE]",
			"live edit ID --brand B --file EDIT.json [--config FILE]",
			"live cancel ID --brand B [--config FILE]",
			"live funnel ID --brand B [--config FILE]"},
		summary: "schedule, edit or cancel a store's live session (its members are invited, or told, by the running workers), or print a session's funnel per store",
		example: "scrmgw live schedule --brand camellia --file live-0110.json",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.brand, "brand", "", "the brand of the session")
			fs.StringVar(&o.liveFile, "file", "", "schedule: the session as JSON, as POST /api/v1/live-sessions takes it; edit: the fields that change, as PATCH /api/v1/live-sessions/{id} takes them")
		}},
	{name: "workflow", config: true, words: []string{"validate", "dry-run"},
		synopsis: []string{"workflow validate FILE...",
			"workflow dry-run FILE --member M.json [--events E.json] [--start TIME]"},
		summary: "check workflow files (every error with file:line:column), or simulate one member through a workflow; nothing is sent",
		example: "scrmgw workflow dry-run configs/workflows/new-member-welcome.yaml --member configs/samples/member.json",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.memberFile, "member", "", "dry-run: the member, as JSON")
			fs.StringVar(&o.eventsFile, "events", "", "dry-run: events that happen to the member, as a JSON list")
			fs.StringVar(&o.startAt, "start", "", "dry-run: when the simulation starts (RFC 3339); default now")
		}},
	{name: "token", config: true, words: []string{"create", "list", "revoke"},
		synopsis: []string{"token create --name N [--brand B] [--read-only] [--resources a,b] [--expires 720h] [--phones]",
			"token list | revoke ID  [--config FILE]"},
		summary: "manage API tokens; create prints the token once",
		example: "scrmgw token create --name crm-sync --brand acme --resources members,commerce --expires 720h",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.token.name, "name", "", "create: the token's name, shown in the audit trail")
			fs.StringVar(&o.token.brand, "brand", "", "create: limit the token to this brand (default: an admin token, every brand)")
			fs.BoolVar(&o.token.readOnly, "read-only", false, "create: GET and HEAD only")
			fs.StringVar(&o.token.resources, "resources", "", "create: limit the token to these route groups, comma-separated ("+strings.Join(api.Resources, ", ")+")")
			fs.DurationVar(&o.token.expires, "expires", 0, "create: the token expires after this long, e.g. 720h (default: never)")
			fs.BoolVar(&o.token.phones, "phones", false, "create: the token sees full phone numbers")
		}},
	{name: "config", config: true,
		synopsis: []string{"config [--config FILE] [--env]"},
		summary:  "check the configuration; list environment variables with --env",
		example:  "scrmgw config --config scrmgw.yaml && scrmgw config --env",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.BoolVar(&o.listEnv, "env", false, "list every key with its environment variable")
		}},
	{name: "health", config: true,
		synopsis: []string{"health [--ready] [--url URL] [--timeout 5s] [--config FILE]"},
		summary:  "GET the local gateway's /healthz (or /readyz) and exit 0 if it answers 200: the container health check",
		example:  "scrmgw health --ready    # http://127.0.0.1:<http.addr's port>/readyz",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.healthURL, "url", "", "the URL to GET (default: /healthz on the port of http.addr, on loopback)")
			fs.BoolVar(&o.healthReady, "ready", false, "GET /readyz instead: the database and Redis are reachable")
			fs.DurationVar(&o.healthTimeout, "timeout", 5*time.Second, "give up after this long")
		}},
	{name: "completion", words: []string{"bash", "zsh", "fish"},
		synopsis: []string{"completion bash|zsh|fish"},
		summary:  "print a shell completion script",
		example:  "scrmgw completion bash > /etc/bash_completion.d/scrmgw    # or: scrmgw completion fish > ~/.config/fish/completions/scrmgw.fish"},
	{name: "version",
		synopsis: []string{"version"},
		summary:  "print the version, the module version and the commit",
		example:  "scrmgw version"},
	{name: "help",
		synopsis: []string{"help [COMMAND]"},
		summary:  "print this overview, or a command's synopsis, flags and an example",
		example:  "scrmgw help import"},
}

func lookupCommand(name string) (command, bool) {
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return commands[i], true
}

func commandNames() []string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return names
}

// flagSet returns c's flags, bound to o. Its errors and usage are the
// caller's to print.
func (c command) flagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if c.config {
		fs.StringVar(&o.config, "config", "", "YAML configuration file (default: none; defaults and SCRMGW_* variables)")
	}
	if c.flags != nil {
		c.flags(fs, o)
	}
	return fs
}

// flagNames are c's flags, without dashes.
func (c command) flagNames() []string {
	var names []string
	c.flagSet(&options{}).VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// usageLines is c's synopsis as "usage: scrmgw ..." lines.
func (c command) usageLines() string {
	var b strings.Builder
	for i, s := range c.synopsis {
		if i == 0 {
			b.WriteString("usage: scrmgw " + s + "\n")
		} else {
			b.WriteString("       scrmgw " + s + "\n")
		}
	}
	return b.String()
}

// printHelp prints c's synopsis, summary, flags and example.
func (c command) printHelp(w io.Writer) {
	fmt.Fprint(w, c.usageLines())
	fmt.Fprintf(w, "\n%s.\n", strings.ToUpper(c.summary[:1])+c.summary[1:])
	first := true
	c.flagSet(&options{}).VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintln(w, "\nFlags:")
			first = false
		}
		typ, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0s" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, usage)
	})
	fmt.Fprintf(w, "\nExample:\n  %s\n", c.example)
}

// overview is `scrmgw --help`: every command's synopsis and summary.
func overview() string {
	var b strings.Builder
	b.WriteString("scrmgw: SCRM gateway for brands that sell through physical stores.\n\nUsage:\n")
	for _, c := range commands {
		for _, s := range c.synopsis {
			b.WriteString("  scrmgw " + s + "\n")
		}
		b.WriteString("      " + c.summary + "\n")
	}
	b.WriteString(`
Run 'scrmgw help COMMAND' or 'scrmgw COMMAND --help' for a command's flags and an example.

With no configuration at all, serve starts in the zero-setup mode: SQLite
under ./data and an in-process Redis. Every setting can come from
SCRMGW_* environment variables; see configs/scrmgw.yaml.
`)
	return b.String()
}

// unknownFlag explains a flag parse error, suggesting the nearest of c's
// flags when the flag is unknown.
func (c command) unknownFlag(err error) string {
	msg := fmt.Sprintf("scrmgw %s: %v", c.name, err)
	if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		if s := yamlcheck.Suggest(name, c.flagNames()); s != "" {
			msg += fmt.Sprintf(" (did you mean --%s?)", s)
		}
	}
	return msg + "\n" + c.usageLines() + "Run 'scrmgw help " + c.name + "' for every flag.\n"
}

// unknownWord is the message for a subcommand or kind c does not know.
func (c command) unknownWord(what, got string) string {
	msg := fmt.Sprintf("scrmgw %s: unknown %s %q", c.name, what, got)
	if s := yamlcheck.Suggest(got, c.words); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg + "\n" + c.usageLines()
}

// unknownCommand is the message for a command that does not exist.
func unknownCommand(got string) string {
	msg := fmt.Sprintf("scrmgw: unknown command %q", got)
	if s := yamlcheck.Suggest(got, commandNames()); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg + "\nRun 'scrmgw help' for the list of commands.\n"
}
