# C: reads B's image_tag through terraform_remote_state (inferred edge).
variable "b_address" {
  type = string
}

data "terraform_remote_state" "b" {
  backend = "http"
  config = {
    address = var.b_address
  }
}

resource "terraform_data" "c" {
  input = data.terraform_remote_state.b.outputs.image_tag
}
