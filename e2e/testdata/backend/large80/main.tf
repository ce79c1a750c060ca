# About 80 MB of state: the blob is stored as both input and output.
# cases.md writes format("%040000000d", 1), but terraform 1.11 and tofu
# 1.10 return a 30-character string for a %d width of 8 digits, so the
# 40,000,000 digits are built from four 10,000,000-digit pieces.
locals {
  blob = join("", [for i in range(4) : format("%010000000d", i)])
}

resource "terraform_data" "blob" {
  input = local.blob
}
