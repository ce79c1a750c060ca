# R-slow(3): R whose apply holds the state lock for about 3 seconds.
variable "v" {
  type    = string
  default = "one"
}

resource "terraform_data" "r" {
  input = var.v

  provisioner "local-exec" {
    command = "sleep 3"
  }
}

output "v" {
  value = terraform_data.r.output
}
