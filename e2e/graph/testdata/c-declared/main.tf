# C: consumes B's image_tag (passed in, the edge is declared).
variable "image_tag" {
  type = string
}

resource "terraform_data" "c" {
  input = var.image_tag
}
