"""The Kubernetes backend: Nodes and ResourceSlices in, ResourceClaims and Pods out."""
