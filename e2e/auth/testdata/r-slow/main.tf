# R-slow(10): R whose apply holds the state lock for about 10 seconds, long
# enough for a short-lived token to expire in the middle (BR-11).
variable "v" {
  type    = string
  default = "one"
}

resource "terraform_data" "r" {
  input = var.v

  provisioner "local-exec" {
    command = "sleep 10"
  }
}

output "v" {
  value = terraform_data.r.output
}
