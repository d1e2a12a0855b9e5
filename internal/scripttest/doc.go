// Package scripttest runs scenario scripts for replog's tests, in the style
// of cockroachdb/datadriven as etcd raft and pebble use it: a script in
// testdata/ is a sequence of blocks
//
//	command arg ...
//	----
//	expected output
//	<blank line>
//
// and lines starting with # (or blank lines) between blocks are comments.
// The package under test supplies a function that executes one command and
// returns its output; Run compares it with the expected output, or, with
// rewrite set (each test package has its own -rewrite flag), writes the
// actual outputs back into the script so that the diff can be reviewed.
//
// It is for tests only and depends on nothing of replog's.
package scripttest
