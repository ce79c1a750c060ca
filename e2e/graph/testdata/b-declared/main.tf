# B: consumes A's db_url (passed in, the edge is declared); produces a
# constant image_tag.
variable "db_url" {
  type = string
}

resource "terraform_data" "b" {
  input = var.db_url
}

output "image_tag" {
  value = "v1"
}
