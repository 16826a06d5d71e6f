//go:build tools

// Package tools pins kwok, which simulates the Nodes (and runs the Pods bound
// to them) of the Stratum test control plane. It is a module of its own so
// that kwok's Kubernetes libraries never mix with the control plane's.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
