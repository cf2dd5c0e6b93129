package main

import (
	"errors"
	"fmt"
)

// Exit codes shared by every command. Commands document further codes (3+)
// in their --help.
const (
	exitOK       = 0 // the answer is yes / the work was done
	exitNegative = 1 // a negative answer: images missing, not done yet, failures
	exitError    = 2 // usage or input error, or a failure to get an answer
)

// exitStatus is returned by a command that wants a specific exit code. With a
// nil Err nothing more is printed: the command already said what it had to.
type exitStatus struct {
	Code int
	Err  error
}

func (e *exitStatus) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *exitStatus) Unwrap() error { return e.Err }

// negative is the error a command returns for a negative answer (exit 1).
func negative() error { return &exitStatus{Code: exitNegative} }

// withCode attaches an exit code to err.
func withCode(code int, err error) error { return &exitStatus{Code: code, Err: err} }

// codeOf maps an error returned by a command to the process exit code.
func codeOf(err error) int {
	if err == nil {
		return exitOK
	}
	var es *exitStatus
	if errors.As(err, &es) {
		return es.Code
	}
	return exitError
}
