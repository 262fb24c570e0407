package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes shared by every subcommand.
const (
	// exitOK: the command did what was asked, the answer is yes.
	exitOK = 0
	// exitFail: the command ran and the answer is no (signature does not
	// verify, rules broken, key refused) or the operation failed.
	exitFail = 1
	// exitUsage: bad flags or arguments, or input that cannot be read or
	// parsed.
	exitUsage = 2
)

// runFunc runs one subcommand with its arguments (without the subcommand
// name) and returns the process exit code. It reads and writes only the
// given streams, so tests run it in-process.
type runFunc func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int

// command is one subcommand of ceb179.
type command struct {
	// name is the word after ceb179 on the command line.
	name string
	// summary is a one-line description for the command list.
	summary string
	// run executes the subcommand.
	run runFunc
}

// run dispatches args (os.Args without the program name) to a subcommand.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		printUsage(stderr, cmds)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 1 {
			// `ceb179 help sign` is `ceb179 sign --help`.
			if c, ok := lookup(cmds, args[1]); ok {
				return c.run(ctx, []string{"--help"}, stdin, stdout, stderr)
			}
			fmt.Fprintf(stderr, "ceb179: unknown command %q\n", args[1])
			printUsage(stderr, cmds)
			return exitUsage
		}
		printUsage(stdout, cmds)
		return exitOK
	}
	c, ok := lookup(cmds, name)
	if !ok {
		if strings.HasPrefix(name, "-") {
			fmt.Fprintf(stderr, "ceb179: unknown flag %q (flags go after the command)\n", name)
		} else {
			fmt.Fprintf(stderr, "ceb179: unknown command %q\n", name)
		}
		printUsage(stderr, cmds)
		return exitUsage
	}
	return c.run(ctx, args[1:], stdin, stdout, stderr)
}

func lookup(cmds []command, name string) (command, bool) {
	for _, c := range cmds {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func printUsage(w io.Writer, cmds []command) {
	var b strings.Builder
	b.WriteString("Usage: ceb179 COMMAND [flags] [args]\n\n")
	b.WriteString("ceb179 signs, verifies and checks the payment data uploaded to China\nCustoms under announcement No.179 (payExInfoStr).\n\nCommands:\n")
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name))
	}
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name, c.summary)
	}
	b.WriteString("\nRun 'ceb179 COMMAND --help' for the flags of a command.\n")
	b.WriteString("Exit codes: 0 ok; 1 the answer is no (bad signature, broken rules,\nrefused key) or the command failed; 2 usage error or unreadable input.\n")
	io.WriteString(w, b.String())
}

// flagSet is the flag.FlagSet of one subcommand. It prints its help on
// stdout (exit 0) for -h/--help and reports flag errors as one line on
// stderr (exit 2). Flags may come before or after the positional arguments;
// everything after "--" is positional.
type flagSet struct {
	*flag.FlagSet
	name  string // subcommand name
	usage string // synopsis after "ceb179 NAME", e.g. "--cert CERT.pem [FILE]"
	about string // what the command does, printed under the synopsis
}

// newFlagSet returns the flag set of subcommand name.
func newFlagSet(name, usage, about string) *flagSet {
	fs := flag.NewFlagSet("ceb179 "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, name: name, usage: usage, about: about}
}

// parse parses args and returns the positional arguments. When ok is false
// the caller returns code at once: help was printed or a usage error was
// reported.
func (f *flagSet) parse(args []string, stdout, stderr io.Writer) (positional []string, code int, ok bool) {
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printHelp(stdout)
				return nil, exitOK, false
			}
			return nil, f.usageError(stderr, err.Error()), false
		}
		rest := f.Args()
		if len(rest) == 0 {
			return positional, exitOK, true
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(positional, rest...), exitOK, true
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// usageError writes msg as one line with a pointer to the help and returns
// exitUsage.
func (f *flagSet) usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "ceb179: %s: %s (see 'ceb179 %s --help')\n", f.name, msg, f.name)
	return exitUsage
}

func (f *flagSet) printHelp(w io.Writer) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Usage: ceb179 %s %s\n\n%s\n", f.name, f.usage, strings.TrimSpace(f.about))
	first := true
	f.VisitAll(func(fl *flag.Flag) {
		if first {
			b.WriteString("\nFlags:\n")
			first = false
		}
		arg, usage := flag.UnquoteUsage(fl)
		fmt.Fprintf(&b, "  --%s", fl.Name)
		if arg != "" {
			fmt.Fprintf(&b, " %s", arg)
		}
		fmt.Fprintf(&b, "\n        %s", usage)
		if fl.DefValue != "" && fl.DefValue != "false" {
			fmt.Fprintf(&b, " (default %s)", fl.DefValue)
		}
		b.WriteByte('\n')
	})
	w.Write(b.Bytes())
}

// fail writes err as one line "ceb179: NAME: err" and returns code.
func fail(stderr io.Writer, name string, code int, err error) int {
	fmt.Fprintf(stderr, "ceb179: %s: %v\n", name, err)
	return code
}

// maxInput bounds what a subcommand reads from a file or stdin: a
// payExInfoStr is far smaller (two raw fields of at most 8000 characters).
const maxInput = 16 << 20

// parseInput parses the flags of a command that reads one document from
// FILE (at most one positional argument) or stdin, and reads it. When ok
// is false the command ends with code, the usage or the error printed.
func (fs *flagSet) parseInput(args []string, stdin io.Reader, stdout, stderr io.Writer) (in []byte, name string, code int, ok bool) {
	pos, code, ok := fs.parse(args, stdout, stderr)
	if !ok {
		return nil, "", code, false
	}
	if len(pos) > 1 {
		return nil, "", fs.usageError(stderr, "at most one input file"), false
	}
	in, name, err := readInput(pos, stdin)
	if err != nil {
		return nil, "", fail(stderr, fs.name, exitUsage, err), false
	}
	return in, name, 0, true
}

// readInput reads the file named by the only positional argument, or stdin
// when there is none or it is "-". It returns the bytes and a name for
// messages.
func readInput(positional []string, stdin io.Reader) ([]byte, string, error) {
	if len(positional) == 0 || positional[0] == "-" {
		b, err := readAllLimited(stdin)
		if err != nil {
			return nil, "stdin", fmt.Errorf("read stdin: %w", err)
		}
		return b, "stdin", nil
	}
	b, err := readFileLimited(positional[0])
	return b, positional[0], err
}

// readFileLimited reads a whole file of at most maxInput bytes.
func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := readAllLimited(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

func readAllLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInput {
		return nil, fmt.Errorf("input larger than %d bytes", maxInput)
	}
	return b, nil
}
