//go:build tools

// Package tools pins the Kubernetes control-plane commands this module builds
// (kube-apiserver, kube-scheduler) so that go.mod/go.sum record them.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
