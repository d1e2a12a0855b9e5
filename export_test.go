package replog

// ControllerOf returns the metadata controller (the raft leader) as c knows
// it, 0 if none: tests pick which node to crash with it.
func ControllerOf(c *Cluster) NodeID { return c.meta.Controller() }

// OnlyCrashed is LocalCluster.Stop's test for errors a Crash caused.
var OnlyCrashed = onlyCrashed
