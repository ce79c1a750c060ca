# B: reads A's db_url through terraform_remote_state (the edge is
# inferred); produces a constant image_tag.
variable "a_address" {
  type = string
}

data "terraform_remote_state" "a" {
  backend = "http"
  config = {
    address = var.a_address
  }
}

resource "terraform_data" "b" {
  input = data.terraform_remote_state.a.outputs.db_url
}

output "image_tag" {
  value = "v1"
}
