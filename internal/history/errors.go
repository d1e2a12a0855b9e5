package history

import "errors"

// ErrInvalidHistory is returned (wrapped, with the reason) by Check for a
// history it cannot judge: two appends of one value, an operation with an
// unknown type or outcome, a completion before its invocation, or an
// operation whose ID is not its index.
var ErrInvalidHistory = errors.New("history: invalid history")
