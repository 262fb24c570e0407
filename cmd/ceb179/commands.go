package main

// commands returns the subcommands in the order `ceb179 --help` lists them.
// To add one, write its command value and run function in a file of its
// own and add one line here.
func commands() []command {
	return []command{
		signCommand,
		signsourceCommand,
		verifyCommand,
		certnoCommand,
		checkCommand,
		certCommand,
		importCommand,
		coverageCommand,
		localCommand,
		customsSimCommand,
		benchCommand,
		statusCommand,
		showCommand,
		replayCommand,
		dlqCommand,
		notifyCommand,
	}
}
