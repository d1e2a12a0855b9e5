// Package transporttest holds what the tests of transport implementations
// share: a Recorder that collects numbered messages per sender and lets a
// test wait, without polling, for a given one to arrive. Tests only.
package transporttest
