# R: the resource set of the cases (built-ins only).
variable "v" {
  type    = string
  default = "one"
}

resource "terraform_data" "r" {
  input = var.v
}

output "v" {
  value = terraform_data.r.output
}
