# R-slow(60): R whose apply holds the state lock for about 60 seconds.
# The sleep is a variable so that the apply after the recovery can be quick.
variable "v" {
  type    = string
  default = "one"
}

variable "sleep" {
  type    = number
  default = 60
}

resource "terraform_data" "r" {
  input = var.v

  provisioner "local-exec" {
    command = "sleep ${var.sleep}"
  }
}

output "v" {
  value = terraform_data.r.output
}
