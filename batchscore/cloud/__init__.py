"""Azure I/O of the tooling: model store uploads to Blob storage, readings to Event Hubs."""
