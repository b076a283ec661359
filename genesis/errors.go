package genesis

import (
	"errors"
	"fmt"
	"strings"
)

// maxProblems bounds how many problems one document reports: a badly
// broken file still gives a readable message, and the search stops there,
// which bounds the work spent on any input.
const maxProblems = 50

// InvalidError reports the problems found in a genesis document, in the
// order of the document (chain_id, genesis_time, consensus_params,
// validators, balances). Each problem starts with the field that holds it,
// such as "balances[3].address", so a person can find and fix it.
// errors.Is and errors.As see every problem through Unwrap.
type InvalidError struct {
	// Problems holds every problem, or the first 50 when Truncated.
	Problems []error
	// Truncated means the search stopped at 50 problems; the document
	// may have more.
	Truncated bool
}

// Error lists the problems, one per line when there are several.
func (e *InvalidError) Error() string {
	if len(e.Problems) == 1 && !e.Truncated {
		return e.Problems[0].Error()
	}
	var sb strings.Builder
	if e.Truncated {
		fmt.Fprintf(&sb, "%d problems, and maybe more (the search stops at %d):", len(e.Problems), maxProblems)
	} else {
		fmt.Fprintf(&sb, "%d problems:", len(e.Problems))
	}
	for _, p := range e.Problems {
		sb.WriteString("\n  ")
		sb.WriteString(p.Error())
	}
	return sb.String()
}

// Unwrap returns the problems.
func (e *InvalidError) Unwrap() []error { return e.Problems }

// problems collects the problems of one document, up to maxProblems.
type problems struct {
	list      []error
	truncated bool
}

// maxProblemLen bounds one problem's message, which may quote input.
const maxProblemLen = 400

func (p *problems) addf(format string, args ...any) {
	if len(p.list) == maxProblems {
		p.truncated = true
		return
	}
	msg := fmt.Sprintf(format, args...)
	if len(msg) > maxProblemLen {
		msg = strings.ToValidUTF8(msg[:maxProblemLen], "") + "..."
	}
	p.list = append(p.list, errors.New(msg))
}

// stopped reports whether the search should stop because no further
// problem would be recorded; loops over the entries of a document check
// it before each entry.
func (p *problems) stopped() bool {
	if len(p.list) == maxProblems {
		p.truncated = true
	}
	return p.truncated
}

// count is the number of problems recorded.
func (p *problems) count() int { return len(p.list) }

// err returns nil when there are no problems, else an *InvalidError.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &InvalidError{Problems: p.list, Truncated: p.truncated}
}
