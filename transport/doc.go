// Package transport defines the contract between replog and the network the
// host application provides: a Transport carries opaque, ordered messages
// between nodes and may drop them under pressure; replog multiplexes all of
// its traffic over one Transport per node and retries what it needs.
package transport
