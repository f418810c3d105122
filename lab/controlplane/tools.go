//go:build tools

// Package controlplane pins the commands the lab builds; see lab/build.py.
package controlplane

import (
	_ "github.com/k3s-io/kine"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
