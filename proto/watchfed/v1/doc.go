// Package watchfedv1 is the public API of a watchfed node: the record model
// (records, markings, consultations) and the services analysts, operators
// and consumers call. Generated from the .proto files beside this one with
// `go tool buf generate`; only this file is written by hand.
package watchfedv1
