# About 8 MB of state: the blob is stored as both input and output.
locals {
  blob = format("%04000000d", 1)
}

resource "terraform_data" "blob" {
  input = local.blob
}
