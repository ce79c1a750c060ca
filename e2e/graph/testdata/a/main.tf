# A: produces db_url. note changes the state without changing any output.
variable "db_url" {
  type = string
}

variable "note" {
  type    = string
  default = ""
}

resource "terraform_data" "a" {
  input = var.note
}

output "db_url" {
  value = var.db_url
}
