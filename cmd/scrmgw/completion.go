package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// printCompletion is `scrmgw completion SHELL`: a completion script made
// from the command table, so a new command or flag completes without
// edits here.
func printCompletion(shell string, stdout, stderr io.Writer) int {
	switch shell {
	case "bash":
		fmt.Fprint(stdout, bashCompletion())
	case "zsh":
		fmt.Fprint(stdout, zshCompletion())
	case "fish":
		fmt.Fprint(stdout, fishCompletion())
	default:
		c, _ := lookupCommand("completion")
		fmt.Fprint(stderr, c.unknownWord("shell", shell))
		return 2
	}
	return 0
}

// cliFlag is one flag of a command, for the completion scripts.
type cliFlag struct {
	name, usage string
	isBool      bool
}

func (c command) cliFlags() []cliFlag {
	var out []cliFlag
	c.flagSet(&options{}).VisitAll(func(f *flag.Flag) {
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		out = append(out, cliFlag{name: f.Name, usage: f.Usage, isBool: ok && b.IsBoolFlag()})
	})
	return out
}

// words is what completes after c: its subcommands or kinds, and for help
// the commands.
func (c command) completionWords() []string {
	if c.name == "help" {
		return commandNames()
	}
	return c.words
}

func bashCompletion() string {
	var b strings.Builder
	b.WriteString(`# bash completion for scrmgw: source <(scrmgw completion bash)
_scrmgw() {
	local cur=${COMP_WORDS[COMP_CWORD]} words="" flags=""
	if ((COMP_CWORD == 1)); then
		COMPREPLY=($(compgen -W "` + strings.Join(commandNames(), " ") + ` --help --version" -- "$cur"))
		return
	fi
	case ${COMP_WORDS[1]} in
`)
	for _, c := range commands {
		var flags []string
		for _, f := range c.cliFlags() {
			flags = append(flags, "--"+f.name)
		}
		flags = append(flags, "--help")
		fmt.Fprintf(&b, "\t%s) words=%q flags=%q ;;\n", c.name, strings.Join(c.completionWords(), " "), strings.Join(flags, " "))
	}
	b.WriteString(`	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
	elif ((COMP_CWORD == 2)) && [[ -n $words ]]; then
		COMPREPLY=($(compgen -W "$words" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -o filenames -F _scrmgw scrmgw
`)
	return b.String()
}

// zshQuote makes s safe inside a single-quoted _arguments spec.
func zshQuote(s string) string {
	return strings.NewReplacer("'", `'\''`, "[", "(", "]", ")").Replace(s)
}

func zshCompletion() string {
	var b strings.Builder
	b.WriteString("#compdef scrmgw\n# zsh completion for scrmgw: scrmgw completion zsh > \"${fpath[1]}/_scrmgw\"\n_scrmgw() {\n\tlocal -a cmds\n\tcmds=(\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "\t\t'%s:%s'\n", c.name, zshQuote(c.summary))
	}
	b.WriteString("\t)\n\tif ((CURRENT == 2)); then\n\t\t_describe 'command' cmds\n\t\treturn\n\tfi\n\tlocal cmd=$words[2]\n\tshift words\n\t((CURRENT--))\n\tcase $cmd in\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "\t%s)\n\t\t_arguments", c.name)
		for _, f := range c.cliFlags() {
			spec := "'--" + f.name + "[" + zshQuote(f.usage) + "]"
			if !f.isBool {
				action := ""
				if f.name == "config" || f.name == "member" || f.name == "events" {
					action = "_files"
				}
				spec += ":" + f.name + ":" + action
			}
			b.WriteString(" \\\n\t\t\t" + spec + "'")
		}
		if w := c.completionWords(); len(w) > 0 {
			b.WriteString(" \\\n\t\t\t'1:" + c.name + ":(" + strings.Join(w, " ") + ")'")
		}
		b.WriteString(" \\\n\t\t\t'*:file:_files' ;;\n")
	}
	b.WriteString("\tesac\n}\nif [[ $funcstack[1] == _scrmgw ]]; then _scrmgw \"$@\"; else compdef _scrmgw scrmgw; fi\n")
	return b.String()
}

// fishQuote makes s safe inside a single-quoted fish string.
func fishQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s)
}

func fishCompletion() string {
	var b strings.Builder
	b.WriteString("# fish completion for scrmgw: scrmgw completion fish > ~/.config/fish/completions/scrmgw.fish\ncomplete -c scrmgw -f\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "complete -c scrmgw -n __fish_use_subcommand -a %s -d '%s'\n", c.name, fishQuote(c.summary))
	}
	for _, c := range commands {
		cond := "'__fish_seen_subcommand_from " + c.name + "'"
		if w := c.completionWords(); len(w) > 0 {
			fmt.Fprintf(&b, "complete -c scrmgw -n %s -a '%s'\n", cond, strings.Join(w, " "))
		}
		for _, f := range c.cliFlags() {
			req := ""
			if !f.isBool {
				req = " -r"
			}
			fmt.Fprintf(&b, "complete -c scrmgw -n %s -l %s%s -d '%s'\n", cond, f.name, req, fishQuote(f.usage))
		}
		if c.name == "import" || c.name == "workflow" || c.config {
			fmt.Fprintf(&b, "complete -c scrmgw -n %s -F\n", cond)
		}
	}
	return b.String()
}
